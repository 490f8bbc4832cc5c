// Package pattern implements Amazon EventBridge event patterns: it parses and
// validates them as EventBridge does, and matches events against many of
// them at once.
//
// It is pure: no I/O, no logging, only the standard library.
//
// # Compiling
//
// Compile parses a pattern (JSON text) and validates it with EventBridge's
// rules. An invalid pattern yields an *Error whose message is the text of
// AWS's InvalidEventPatternException: "Event pattern is not valid. Reason:
// ...", with the reasons of EventBridge's compiler and, for problems at a
// place in the text, the location in the form of the Jackson parser AWS
// uses. CompileWithLimits sets the limits: pattern length (2,048 characters
// by default, AWS's quota; the API allows 4,096), "$or" combinations (1,000)
// and wildcard complexity.
//
// # Semantics
//
// A pattern mirrors the event's structure. Leaf values are lists: a field
// matches when any entry of its list does (OR), and every field of the
// pattern must match (AND). Keys are joined with dots, so {"a.b": [...]}
// and {"a": {"b": [...]}} name the same field, in patterns and in events.
// When a key appears twice, the last one counts. "$or" takes a list of two
// or more objects and multiplies the alternatives.
//
// Event values that are arrays match when any element does. Values taken
// from an array of objects must come from the same element of that array
// (array-consistent matching). A leaf is a string, number, boolean or null;
// objects and empty arrays are not leaves.
//
// Operators:
//   - exact: strings match exactly; a string that is an IP address matches
//     that address however the event spells it (as in EventBridge); numbers
//     match by their text, so 300 and 300.0 differ, as AWS documents;
//     true, false and null match themselves. null is neither "" nor missing.
//   - prefix, suffix (strings only; "" matches every string), and their
//     {"equals-ignore-case": ...} forms.
//   - equals-ignore-case: strings equal after case folding. Each character
//     folds to the lower case of its upper case (Java's per-character rule),
//     so the folding is correct for Greek, Cyrillic and other scripts; a
//     character whose upper case is several characters (German ß) matches
//     only itself and its single-character forms.
//   - wildcard: '*' matches any run of characters; \* and \\ are the only
//     escapes; consecutive stars are refused; strings only.
//   - anything-but: a string, a number, a list of strings or of numbers, or
//     {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": value or list}. It
//     matches every leaf it does not exclude, null, numbers and booleans
//     included, but never a missing field. Numbers are excluded by value.
//   - numeric: one comparison, or a lower and an upper bound; by value, over
//     IEEE-754 doubles; numbers only.
//   - cidr: IPv4 and IPv6 ranges; as in EventBridge the range runs from the
//     address written to the end of its network, and /32 (/128) is refused.
//   - exists: true matches any leaf; false matches when no leaf is present
//     at the path that agrees with the array elements of the values matched
//     for the other fields.
//
// Where this package departs from EventBridge's engine, it follows AWS's
// user guide (numbers by text) or, where nothing is documented, the
// behaviour a user would expect; docs/ARCHITECTURE.md lists the choices.
//
// # Matching many patterns
//
// A Matcher compiles all its patterns into one automaton: every alternative
// of every pattern is a chain of conditions, chains that begin alike share
// states, and at each state an index over the values of one field (hash maps
// for exact and case-folded values, length-keyed maps for prefixes and
// suffixes, sorted ranges, network prefixes) yields the next states. Events
// are scanned once, keeping only the fields that some pattern tests, so the
// cost of a match grows with the size of the event and the fields patterns
// use, not with the number of patterns; wildcards and anything-but are
// tried one by one among the patterns that reach them.
//
// Matcher is safe for concurrent use: matches read an immutable automaton
// through an atomic pointer and never wait; Add, Delete and Replace rebuild
// the automaton under a mutex and publish it atomically.
//
// Events are JSON objects up to MaxEventDepth levels deep. A malformed
// event is an *EventError, never a panic.
package pattern
