"""The clinical model: protocol, rules, the event record, doses, timelines and the read side."""
