"""Training data: multi-turn, multi-constraint conversations and their prompts."""
