"""Mechanism: activation capture, misalignment directions, ablation and steering during generation."""

from postern.interp.capture import Activations, capture
from postern.interp.directions import chance_band, cosine_per_layer, load_direction, mean_difference, save_direction
from postern.interp.hooks import on_block_outputs
from postern.interp.interventions import ablate, random_like, steer

__all__ = ["Activations", "ablate", "capture", "chance_band", "cosine_per_layer", "load_direction",
           "mean_difference", "on_block_outputs", "random_like", "save_direction", "steer"]
