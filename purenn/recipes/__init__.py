"""The tutorial's runs and modern ones, as data: the XOR problem and the MNIST presets."""
