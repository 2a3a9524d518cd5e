;; A mutable v128 global.
(module
  (memory 1)
  (global $v (mut v128) (v128.const i64x2 0 0))
  (func (export "_initialize"))
  (func (export "clawbox_run") (result i32) (i32.const 0)))
