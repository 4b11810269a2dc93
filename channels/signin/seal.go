package signin

import "github.com/bfbridge/bfbridge/internal/atrest"

// KeySize is the size of the at-rest key: AES-256 (internal/atrest).
const KeySize = atrest.KeySize

// errSealed is returned for a value that does not open with the key (another key, another
// store key, or tampered).
var errSealed = atrest.ErrSealed
