// Package docscheck holds the tests that keep the repository's Markdown
// honest for a reader who has only the repository: every relative link
// resolves to a file (and heading) inside it, none points outside, the
// code snippets match the examples they are copied from, and the reference
// names every variable the worker reads.
package docscheck
