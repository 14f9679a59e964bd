/* Pieces of a fused elementwise program (kernels/kernel_args.h): an instruction,
 * and the argument blob (the header, then the leaves, then the instructions).
 * Shared by the tests that build programs by hand (tests/array/kernel_util.h,
 * tests/cuda/ew_emulation_test.cc) and at random (tests/cuda/ew_random_program.h). */
#ifndef TSR_TESTS_COMMON_EW_BLOB_H
#define TSR_TESTS_COMMON_EW_BLOB_H

#include <cstring>
#include <vector>

#include "../../kernels/kernel_args.h"

namespace tsr_test {

/* An instruction without immediates: operands a, b, c (-1: none) and aux. */
inline tsr_ew_instr_t EwInstr(int op, int type, int a = -1, int b = -1, int c = -1, int aux = 0)
{
    tsr_ew_instr_t in;
    std::memset(&in, 0, sizeof(in));
    in.op = op;
    in.type = type;
    in.a = a;
    in.b = b;
    in.c = c;
    in.aux = aux;
    return in;
}

inline std::vector<unsigned char> EwBlob(const tsr_ew_header_t &h,
                                         const std::vector<tsr_ew_leaf_t> &leaves,
                                         const std::vector<tsr_ew_instr_t> &code)
{
    const size_t n_leaves = leaves.size() * sizeof(tsr_ew_leaf_t);
    std::vector<unsigned char> b(sizeof(h) + n_leaves + code.size() * sizeof(tsr_ew_instr_t));
    std::memcpy(b.data(), &h, sizeof(h));
    if (!leaves.empty()) {
        std::memcpy(b.data() + sizeof(h), leaves.data(), n_leaves);
    }
    if (!code.empty()) {
        std::memcpy(b.data() + sizeof(h) + n_leaves, code.data(),
                    code.size() * sizeof(tsr_ew_instr_t));
    }
    return b;
}

}  // namespace tsr_test

#endif  // TSR_TESTS_COMMON_EW_BLOB_H
