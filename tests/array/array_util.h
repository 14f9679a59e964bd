// Helpers shared by the C++ array tests: an owning handle and a spec builder.
#ifndef TSR_TESTS_ARRAY_ARRAY_UTIL_H
#define TSR_TESTS_ARRAY_ARRAY_UTIL_H

#include <tessera.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace tsr_test {

struct ArrayDeleter {
    void operator()(tsr_array_t *a) const { tsr_array_release(a); }
};
using Array = std::unique_ptr<tsr_array_t, ArrayDeleter>;

// dtype, shape and chunk sizes (missing or 0 entries: automatic).
inline tsr_array_spec_t Spec(tsr_dtype_t dtype, std::vector<int64_t> shape,
                             std::vector<int64_t> chunks)
{
    tsr_array_spec_t s = TSR_ARRAY_SPEC_INIT;
    s.dtype = dtype;
    s.ndim = static_cast<uint32_t>(shape.size());
    for (size_t d = 0; d < shape.size(); d++) {
        s.shape[d] = shape[d];
        s.chunks[d] = d < chunks.size() ? chunks[d] : 0;
    }
    return s;
}

} // namespace tsr_test

#endif // TSR_TESTS_ARRAY_ARRAY_UTIL_H
