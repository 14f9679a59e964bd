// Helpers shared by the C++ array tests: an owning handle, a spec builder, and
// wrappers that check a call and take its result.
#ifndef TSR_TESTS_ARRAY_ARRAY_UTIL_H
#define TSR_TESTS_ARRAY_ARRAY_UTIL_H

#include <gtest/gtest.h>
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

// Take ownership of the array a call made, expecting the call to have succeeded.
inline Array Make(tsr_status_t st, tsr_array_t *a)
{
    EXPECT_EQ(st, TSR_OK) << tsr_last_error();
    return Array(a);
}

// Compute `a` into a new vector of its size (T must match its dtype).
template <class T>
std::vector<T> Compute(tsr_array_t *a)
{
    std::vector<T> out(static_cast<size_t>(tsr_array_size(a)));
    EXPECT_EQ(tsr_array_compute(a, out.data(), out.size() * sizeof(T)), TSR_OK) << tsr_last_error();
    return out;
}

}  // namespace tsr_test

// MAKE(tsr_array_xxx(..., &out_)): the array the call writes to out_, owned.
#define MAKE(call)                        \
    [&]() {                               \
        tsr_array_t *out_ = nullptr;      \
        tsr_status_t st_ = (call);        \
        return tsr_test::Make(st_, out_); \
    }()

#endif  // TSR_TESTS_ARRAY_ARRAY_UTIL_H
