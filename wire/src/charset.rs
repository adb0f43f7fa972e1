//! Specific Character Set (0008,0005): whether text values are valid in the declared set.
