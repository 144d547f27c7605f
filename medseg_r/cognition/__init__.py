"""Model side of the cognitive stage: prior tokens, cross-attribute fusion, location rasteriser."""
from .fusion import PriorFusion
from .prior_encoder import GROUPS, PriorEncoder
from .rasterise import DEFAULT_LAYOUTS, LocationRasteriser
from .text_encoders import HashedNgramEncoder, HFTextEncoder, build_text_encoder

__all__ = ["DEFAULT_LAYOUTS", "GROUPS", "HFTextEncoder", "HashedNgramEncoder", "LocationRasteriser", "PriorEncoder",
           "PriorFusion", "build_text_encoder"]
