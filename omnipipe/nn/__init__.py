"""Neural-network components: patchifiers, attention blocks, bottlenecks, the tokenizer."""
