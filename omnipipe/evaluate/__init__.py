"""Evaluation of a trained tokenizer on the val split: metrics, a bicubic baseline, pictures and videos."""
