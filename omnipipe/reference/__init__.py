"""The released OmniTokenizer (FoundationVision/OmniTokenizer): its checkpoints as omnipipe tokenizers.

``architecture`` reads the network's hyper-parameters from a checkpoint, ``layout`` names every
tensor of its state dict and where it goes in omnipipe, ``checkpoint`` loads Lightning ``.ckpt``
files safely, ``convert`` builds the omnipipe tokenizer, ``synthetic`` writes seeded weights in the
reference's layout (for equivalence tests and benchmarks).
"""
