"""One notebook's work: defaults, the checks before sending, replay and the budget, multi-turn
conversations, and which notebook (and so which history) this kernel serves. Every rule the
front ends share lives here, testable with no kernel."""
