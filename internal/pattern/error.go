package pattern

// Error is an event pattern that is not valid. Its message is the text AWS
// returns in an InvalidEventPatternException.
type Error struct {
	// Reason says what is wrong, in the words of EventBridge's pattern
	// compiler, followed (for problems at a place in the text) by the
	// location in the form "\n at [Source: (String)"..."; line: L, column: C]".
	Reason string
}

func (e *Error) Error() string {
	return "Event pattern is not valid. Reason: " + e.Reason
}
