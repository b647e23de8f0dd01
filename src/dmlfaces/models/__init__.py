"""Models: face backbones, margin losses and (later) set aggregators."""
