"""Training: one generic loop (loop.py) for every task (task.py), the tokenizer stages (tokenizer_task.py)."""
