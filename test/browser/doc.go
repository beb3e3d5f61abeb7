// Package browser holds Holdfast's browser tests: headless Chromium, driven with chromedp,
// against a real `holdfast dev` process. It is a nested module so that chromedp stays out
// of the library's go.mod.
//
// Chromium comes from Debian's package (`task deps:browser`); the tests are skipped
// without it, except under CI. Screenshots are written to artifacts/.
package browser
