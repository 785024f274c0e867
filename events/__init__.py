"""The log: payload types, envelope, canonical encoding, hash chain, upcasters, backends, seed."""
