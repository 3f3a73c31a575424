#include "lire/core/error.h"
// lire::Error is header-only; this file anchors the vtables of the error types.
namespace lire {}
