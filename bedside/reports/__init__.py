"""What leaves the record: handover, exports, summaries and the words a nurse reads."""
