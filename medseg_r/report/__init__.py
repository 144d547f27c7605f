"""Text side of the cognitive stage: free-text report -> structured priors. Never imports torch."""
from .parser import parse_report, split_sentences
from .schema import Finding, Location, Report
from .vocab import Vocabulary, default_vocabulary, load_vocabulary

__all__ = ["Finding", "Location", "Report", "Vocabulary", "default_vocabulary", "load_vocabulary",
           "parse_report", "split_sentences"]
