;; A start function: it runs when the module is instantiated.
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func $s (global.set $g (i32.const 1)))
  (start $s)
  (func (export "_initialize"))
  (func (export "clawbox_run") (result i32) (i32.const 0))
  (data (i32.const 16) "A"))
