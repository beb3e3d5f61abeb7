// Package builtin holds built-in classes, written only against the public SDK: each
// imports package objects and the standard library, nothing else of Holdfast.
package builtin
