"""Foundation: errors, time helpers, the injected clock and the one strict JSON reader."""
