#include "persistence/blob_store.hpp"

namespace phonon::persistence {

blob_store::~blob_store() = default;

} // namespace phonon::persistence
