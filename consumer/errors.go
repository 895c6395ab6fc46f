package consumer

import "errors"

// ErrInvalidConfig is wrapped by New's error for a configuration that cannot work.
var ErrInvalidConfig = errors.New("consumer: invalid configuration")
