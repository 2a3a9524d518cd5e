;; A reactor whose clawbox_run exits 0 only when the state _initialize left is
;; there: both active data segments, the global set to 7, the passive segment
;; usable with memory.init. Exit codes: 2 the first segment is missing, 3 the
;; second, 4 the global, 5 memory.init.
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $g (i32.const 7)))
  (func (export "clawbox_run") (result i32)
    (if (i32.ne (i32.load8_u (i32.const 16)) (i32.const 65)) (then (return (i32.const 2))))
    (if (i32.ne (i32.load8_u (i32.const 1024)) (i32.const 66)) (then (return (i32.const 3))))
    (if (i32.ne (global.get $g) (i32.const 7)) (then (return (i32.const 4))))
    (memory.init $p (i32.const 2048) (i32.const 0) (i32.const 1))
    (if (i32.ne (i32.load8_u (i32.const 2048)) (i32.const 67)) (then (return (i32.const 5))))
    (global.set $g (i32.const 8))
    (i32.const 0))
  (data (i32.const 16) "A")
  (data (i32.const 1024) "B")
  (data $p "C"))
