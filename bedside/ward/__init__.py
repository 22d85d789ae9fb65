"""The ward service (write side), alerts, time safety, ward sync and file transfer."""
