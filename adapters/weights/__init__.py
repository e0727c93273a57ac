"""Reading a model's files into domain terms: weights, configs, vocabularies, image settings."""
