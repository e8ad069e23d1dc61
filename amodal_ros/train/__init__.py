"""Training of the Diffusion-VAS UNets: the EDM objective, conditioning dropout, the depth
channels added to a mask-only model. Nothing imports this package at inference time."""
