// Package layout holds no code: its tests guard the module's shape (SPEC section 1)
// for the next engineer: every package has a doc comment, and imports flow one way.
package layout
