"""The lab's orchestration library (scripts/lab/lab.py is the entry point)."""
