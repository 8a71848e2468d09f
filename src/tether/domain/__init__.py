"""Pure rules of Tether: scopes, slices, policy, evidence, the gate, transitions, audit hashing, errors."""
