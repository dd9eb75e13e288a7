"""Reusable Keras layers (registered under the ``fer_keras`` package for saving and loading)."""
from fer_keras.layers.fused_mbconv import FusedMBConv
from fer_keras.layers.ghost_bottleneck import GhostBottleneck
from fer_keras.layers.ghost_module import GhostModule
from fer_keras.layers.triplet_attention import TripletAttention

__all__ = ["FusedMBConv", "GhostBottleneck", "GhostModule", "TripletAttention"]
