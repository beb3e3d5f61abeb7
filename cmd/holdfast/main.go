// Command holdfast is the stock Holdfast binary, with the built-in classes.
package main

import "github.com/holdfast/holdfast"

func main() { holdfast.Main() }
