"""The deploy harness: real Provider framework, Step Functions interpreter, virtual time."""
