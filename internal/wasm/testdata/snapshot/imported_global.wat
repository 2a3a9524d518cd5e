;; An imported global.
(module
  (import "env" "g" (global i32))
  (memory 1)
  (func (export "_initialize"))
  (func (export "clawbox_run") (result i32) (i32.const 0)))
