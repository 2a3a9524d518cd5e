;; A data segment whose offset is not a plain i32.const (extended constant
;; expressions).
(module
  (memory 1)
  (func (export "_initialize"))
  (func (export "clawbox_run") (result i32) (i32.const 0))
  (data (offset (i32.add (i32.const 8) (i32.const 8))) "A"))
