// Arrays in files (collections/array/io.c): .npy and raw round trips for every
// dtype and rank with uneven chunks, stores of lazy, persisted, borrowed and
// sim-device arrays, hand-written headers, and the error paths (missing,
// truncated and malformed files, unsupported dtypes, NULL arguments, unwritable
// paths, failed reads and writes). tests/array/npy_check.py checks the files
// against NumPy itself.
#include <gtest/gtest.h>
#include <tessera.h>

#include "array/array_util.h"
#include "common/test_util.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

using tsr_test::Array;
using tsr_test::Runtime;
using tsr_test::Spec;
using tsr_test::TempDir;
using Bytes = std::vector<uint8_t>;

size_t NBytes(const tsr_array_spec_t &s)
{
    size_t n = tsr_dtype_size(s.dtype);
    for (uint32_t d = 0; d < s.ndim; d++) {
        n *= static_cast<size_t>(s.shape[d]);
    }
    return n;
}

Bytes ComputeBytes(tsr_array_t *a)
{
    size_t n = static_cast<size_t>(tsr_array_size(a)) * tsr_dtype_size(tsr_array_dtype(a));
    Bytes out(n);
    EXPECT_EQ(tsr_array_compute(a, out.data(), n), TSR_OK) << tsr_last_error();
    return out;
}

Bytes ReadFile(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string &path, const Bytes &bytes)
{
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char *>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

bool Exists(const std::string &path)
{
    struct stat sb;
    return stat(path.c_str(), &sb) == 0;
}

// Random values of s's dtype: any bits for integers, 0/1 for bools, finite
// values for floats (a round trip must give back every bit).
Bytes RandomValues(const tsr_array_spec_t &s, std::mt19937_64 &rng)
{
    Bytes v(NBytes(s));
    if (s.dtype == TSR_FLOAT32 || s.dtype == TSR_FLOAT64) {
        std::normal_distribution<double> nd(0.0, 1e3);
        for (size_t i = 0; i < v.size(); i += tsr_dtype_size(s.dtype)) {
            double x = nd(rng);
            float f = static_cast<float>(x);
            std::memcpy(&v[i], s.dtype == TSR_FLOAT64 ? static_cast<void *>(&x) : &f,
                        tsr_dtype_size(s.dtype));
        }
        return v;
    }
    for (uint8_t &b : v) {
        b = static_cast<uint8_t>(s.dtype == TSR_BOOL ? rng() & 1 : rng());
    }
    return v;
}

Array FromBytes(tsr_runtime_t *rt, const tsr_array_spec_t &s, Bytes &v, uint32_t flags)
{
    tsr_array_t *a = nullptr;
    EXPECT_EQ(tsr_array_from_buffer(rt, &s, v.data(), v.size(), flags, &a), TSR_OK)
        << tsr_last_error();
    return Array(a);
}

Array LoadNpy(tsr_runtime_t *rt, const std::string &path, const int64_t *chunks = nullptr)
{
    tsr_array_t *a = nullptr;
    EXPECT_EQ(tsr_array_from_npy(rt, path.c_str(), chunks, &a), TSR_OK) << tsr_last_error();
    return Array(a);
}

// Random shape of `ndim` dimensions and uneven chunks (and sometimes automatic).
tsr_array_spec_t RandomSpec(tsr_dtype_t dtype, uint32_t ndim, std::mt19937_64 &rng)
{
    std::vector<int64_t> shape;
    std::vector<int64_t> chunks;
    for (uint32_t d = 0; d < ndim; d++) {
        int64_t n = 1 + static_cast<int64_t>(rng() % (ndim <= 2 ? 40 : 9));
        shape.push_back(n);
        chunks.push_back(rng() % 5 == 0 ? 0 : 1 + static_cast<int64_t>(rng() % n));
    }
    return Spec(dtype, shape, chunks);
}

std::string NpyHeaderText(const Bytes &file)
{
    size_t len = file[8] | static_cast<size_t>(file[9]) << 8;
    return std::string(file.begin() + 10, file.begin() + 10 + static_cast<long>(len));
}

Runtime Cpu4()
{
    return tsr_test::StartRuntime(4, TSR_SCHED_DEFAULT);
}

// ---- round trips ------------------------------------------------------------------

TEST(ArrayIo, NpyAndRawRoundTripEveryDtypeAndRank)
{
    uint64_t seed = tsr_test::TestSeed();
    SCOPED_TRACE(tsr_test::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    ASSERT_FALSE(dir.path().empty());
    std::string npy = dir.path() + "/a.npy";
    std::string raw = dir.path() + "/a.raw";
    for (int t = 0; t < TSR_N_DTYPES; t++) {
        for (uint32_t ndim = 0; ndim <= 4; ndim++) {
            tsr_dtype_t dtype = static_cast<tsr_dtype_t>(t);
            tsr_array_spec_t s = RandomSpec(dtype, ndim, rng);
            SCOPED_TRACE(std::string(tsr_dtype_name(dtype)) + " ndim " + std::to_string(ndim));
            Bytes v = RandomValues(s, rng);
            Array a = FromBytes(rt.get(), s, v, TSR_ARRAY_COPY);
            ASSERT_TRUE(a);

            ASSERT_EQ(tsr_array_to_npy(a.get(), npy.c_str()), TSR_OK) << tsr_last_error();
            Bytes file = ReadFile(npy);
            ASSERT_GE(file.size(), 64u);
            size_t data_off = file.size() - v.size();
            EXPECT_EQ(data_off % 64, 0u);
            EXPECT_EQ(file[6], 1);
            EXPECT_EQ(file[data_off - 1], '\n');
            EXPECT_EQ(0, std::memcmp(file.data() + data_off, v.data(), v.size()));
            // Other chunks on the way back.
            tsr_array_spec_t s2 = RandomSpec(dtype, ndim, rng);
            for (uint32_t d = 0; d < ndim; d++) {
                s2.shape[d] = s.shape[d];
                s2.chunks[d] = s2.chunks[d] > s.shape[d] ? 0 : s2.chunks[d];
            }
            Array b = LoadNpy(rt.get(), npy, s2.chunks);
            ASSERT_TRUE(b);
            ASSERT_EQ(tsr_array_dtype(b.get()), dtype);
            ASSERT_EQ(tsr_array_ndim(b.get()), ndim);
            for (uint32_t d = 0; d < ndim; d++) {
                EXPECT_EQ(tsr_array_dim(b.get(), d), s.shape[d]);
                if (s2.chunks[d] > 0) {
                    EXPECT_EQ(tsr_array_chunk_size(b.get(), d, 0), s2.chunks[d]);
                }
            }
            EXPECT_EQ(ComputeBytes(b.get()), v);

            ASSERT_EQ(tsr_array_to_raw(b.get(), raw.c_str()), TSR_OK) << tsr_last_error();
            EXPECT_EQ(ReadFile(raw), v);
            tsr_array_t *c = nullptr;
            ASSERT_EQ(tsr_array_from_raw(rt.get(), raw.c_str(), &s, 0, &c), TSR_OK)
                << tsr_last_error();
            Array cc(c);
            EXPECT_EQ(ComputeBytes(c), v);
        }
    }
}

TEST(ArrayIo, ScalarHeaderHasEmptyShape)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_test::TempFile f("tsr-io-scalar");
    double x = 2.5;
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {}, {});
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_from_buffer(rt.get(), &s, &x, sizeof(x), TSR_ARRAY_COPY, &a), TSR_OK);
    Array aa(a);
    ASSERT_EQ(tsr_array_to_npy(a, f.path().c_str()), TSR_OK) << tsr_last_error();
    Bytes file = ReadFile(f.path());
    EXPECT_EQ(
        NpyHeaderText(file).rfind("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 0), 0u)
        << NpyHeaderText(file);
    tsr_array_spec_t s1 = Spec(TSR_UINT16, {7}, {3});
    Array one = Array([&] {
        tsr_array_t *o = nullptr;
        EXPECT_EQ(tsr_array_full(rt.get(), &s1, 9, &o), TSR_OK);
        return o;
    }());
    ASSERT_EQ(tsr_array_to_npy(one.get(), f.path().c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(NpyHeaderText(ReadFile(f.path()))
                  .rfind("{'descr': '<u2', 'fortran_order': False, "
                         "'shape': (7,), }",
                         0),
              0u);
    Array b = LoadNpy(rt.get(), f.path());
    EXPECT_EQ(tsr_array_ndim(b.get()), 1u);
}

// Stores of arrays that are not sources: a lazy expression (computed for the
// store, and still an expression afterwards), a persisted one, a borrowed buffer.
TEST(ArrayIo, StoresLazyPersistedAndBorrowedArrays)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    std::string p = dir.path() + "/x.npy";
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {123, 45}, {17, 10});
    tsr_array_t *x = nullptr;
    tsr_array_t *y = nullptr;
    tsr_array_t *z = nullptr;
    ASSERT_EQ(tsr_array_random_normal(rt.get(), &s, 7, 0, 1, &x), TSR_OK);
    Array xa(x);
    ASSERT_EQ(tsr_array_binary_scalar(TSR_OP_MUL, x, 3.0, 0, &y), TSR_OK);
    Array ya(y);
    ASSERT_EQ(tsr_array_binary(TSR_OP_ADD, y, x, &z), TSR_OK);
    Array za(z);
    Bytes want = ComputeBytes(z);

    ASSERT_EQ(tsr_array_to_npy(z, p.c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(ComputeBytes(LoadNpy(rt.get(), p).get()), want);
    EXPECT_EQ(ComputeBytes(z), want);  // still usable

    ASSERT_EQ(tsr_array_persist(z), TSR_OK) << tsr_last_error();
    ASSERT_EQ(tsr_array_to_npy(z, p.c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(ComputeBytes(LoadNpy(rt.get(), p).get()), want);
    ASSERT_EQ(tsr_array_to_npy(z, p.c_str()), TSR_OK) << tsr_last_error();  // chunks kept
    EXPECT_EQ(ComputeBytes(z), want);

    Bytes buf = want;
    Array borrowed = FromBytes(rt.get(), s, buf, TSR_ARRAY_BORROW);
    ASSERT_EQ(tsr_array_to_raw(borrowed.get(), p.c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(ReadFile(p), want);
    EXPECT_EQ(buf, want);
}

// Chunks computed on (small) simulated devices are written by CPU tasks.
TEST(ArrayIo, StoresChunksComputedOnSimDevices)
{
    tsr_config_t cfg = tsr_test::TestConfig(2, TSR_SCHED_DMDA);
    cfg.n_sim_devices = 2;
    cfg.sim_mem_bytes = 1u << 20;
    Runtime rt = tsr_test::StartRuntime(cfg);
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    std::string p = dir.path() + "/s.npy";
    tsr_array_spec_t s = Spec(TSR_FLOAT32, {512, 300}, {64, 300});
    tsr_array_t *x = nullptr;
    tsr_array_t *y = nullptr;
    ASSERT_EQ(tsr_array_random_uniform(rt.get(), &s, 11, -1, 1, &x), TSR_OK);
    Array xa(x);
    ASSERT_EQ(tsr_array_unary(TSR_OP_SIN, x, &y), TSR_OK);
    Array ya(y);
    Bytes want = ComputeBytes(y);
    ASSERT_EQ(tsr_array_to_npy(y, p.c_str()), TSR_OK) << tsr_last_error();
    Array b = LoadNpy(rt.get(), p);
    EXPECT_EQ(ComputeBytes(b.get()), want);
    tsr_array_t *sum = nullptr;
    ASSERT_EQ(tsr_array_binary(TSR_OP_ADD, b.get(), b.get(), &sum), TSR_OK) << tsr_last_error();
    Array sa(sum);
    Bytes twice = ComputeBytes(sum);
    const float *w = reinterpret_cast<const float *>(want.data());
    const float *t = reinterpret_cast<const float *>(twice.data());
    for (size_t i = 0; i < want.size() / sizeof(float); i += 997) {
        EXPECT_EQ(t[i], w[i] + w[i]);
    }
}

TEST(ArrayIo, ManyChunksInParallel)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    std::string p = dir.path() + "/m.npy";
    tsr_array_spec_t s = Spec(TSR_INT64, {301, 203, 3}, {37, 23, 2});
    std::mt19937_64 rng(5);
    Bytes v = RandomValues(s, rng);
    Array a = FromBytes(rt.get(), s, v, TSR_ARRAY_COPY);
    ASSERT_EQ(tsr_array_to_npy(a.get(), p.c_str()), TSR_OK) << tsr_last_error();
    int64_t chunks[3] = {50, 0, 1};
    Array b = LoadNpy(rt.get(), p, chunks);
    EXPECT_EQ(tsr_array_num_chunks(b.get(), 0), 7);
    EXPECT_EQ(tsr_array_num_chunks(b.get(), 1), 1);
    EXPECT_EQ(tsr_array_num_chunks(b.get(), 2), 3);
    EXPECT_EQ(ComputeBytes(b.get()), v);
    Array c = LoadNpy(rt.get(), p);
    EXPECT_EQ(ComputeBytes(c.get()), v);
}

TEST(ArrayIo, FromRawAtAnOffset)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_test::TempFile f("tsr-io-raw");
    tsr_array_spec_t s = Spec(TSR_INT32, {33, 7}, {8, 3});
    std::mt19937_64 rng(9);
    Bytes v = RandomValues(s, rng);
    Bytes file(13 + v.size() + 5, 0xAB);
    std::memcpy(file.data() + 13, v.data(), v.size());
    WriteFile(f.path(), file);
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 13, &a), TSR_OK)
        << tsr_last_error();
    Array aa(a);
    EXPECT_EQ(tsr_array_num_chunks(a, 0), 5);
    EXPECT_EQ(ComputeBytes(a), v);
    // Past the end: refused before anything is read.
    tsr_array_t *b = nullptr;
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 19, &b), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("too short"), std::string::npos)
        << tsr_last_error();
    EXPECT_EQ(b, nullptr);
}

// Headers as other writers may produce them: keys in any order, double quotes,
// extra spaces, no trailing comma, '=' and '<' byte orders for one-byte types,
// Fortran order where it does not matter, format 2.0.
TEST(ArrayIo, ParsesHandWrittenHeaders)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_test::TempFile f("tsr-io-hdr");
    struct Case {
        const char *dict;
        tsr_dtype_t dtype;
        std::vector<int64_t> shape;
        int version;
    };
    const Case cases[] = {
        {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<i4'}", TSR_INT32, {2, 3}, 1},
        {"{ \"descr\" : \"=f8\" ,\"fortran_order\":False,'shape':( 4 ,5 , ) , }",
         TSR_FLOAT64,
         {4, 5},
         1},
        {"{'descr': '<b1', 'fortran_order': False, 'shape': (6,)}", TSR_BOOL, {6}, 1},
        {"{'descr': '>u1', 'fortran_order': False, 'shape': (3L, 2L), }", TSR_UINT8, {3, 2}, 1},
        {"{'descr': 'u2', 'fortran_order': True, 'shape': (1, 9, 1), }", TSR_UINT16, {1, 9, 1}, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", TSR_FLOAT32, {}, 1},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (5, 2), }", TSR_INT64, {5, 2}, 2},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", TSR_UINT8, {3}, 3},
    };
    std::mt19937_64 rng(3);
    for (const Case &c : cases) {
        SCOPED_TRACE(c.dict);
        tsr_array_spec_t s = Spec(c.dtype, c.shape, {});
        Bytes v = RandomValues(s, rng);
        std::string h = c.dict;
        size_t pre = c.version == 1 ? 10 : 12;
        h += std::string(64 - (pre + h.size() + 1) % 64, ' ') + "\n";
        Bytes file = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(c.version), 0};
        for (size_t i = 0; i < pre - 8; i++) {
            file.push_back(static_cast<uint8_t>(h.size() >> (8 * i)));
        }
        file.insert(file.end(), h.begin(), h.end());
        file.insert(file.end(), v.begin(), v.end());
        WriteFile(f.path(), file);
        Array a = LoadNpy(rt.get(), f.path());
        ASSERT_TRUE(a);
        EXPECT_EQ(tsr_array_dtype(a.get()), c.dtype);
        ASSERT_EQ(tsr_array_ndim(a.get()), c.shape.size());
        EXPECT_EQ(ComputeBytes(a.get()), v);
    }
}

// ---- errors -----------------------------------------------------------------------

// A .npy file with header `dict` and `n_data` bytes of data.
Bytes NpyFile(const std::string &dict, size_t n_data)
{
    std::string h = dict + std::string(64 - (10 + dict.size() + 1) % 64, ' ') + "\n";
    Bytes file = {0x93,
                  'N',
                  'U',
                  'M',
                  'P',
                  'Y',
                  1,
                  0,
                  static_cast<uint8_t>(h.size()),
                  static_cast<uint8_t>(h.size() >> 8)};
    file.insert(file.end(), h.begin(), h.end());
    file.resize(file.size() + n_data, 0);
    return file;
}

void ExpectLoadFails(tsr_runtime_t *rt, const std::string &path, tsr_status_t want,
                     std::vector<std::string> words)
{
    tsr_array_t *a = nullptr;
    EXPECT_EQ(tsr_array_from_npy(rt, path.c_str(), nullptr, &a), want) << tsr_last_error();
    EXPECT_EQ(a, nullptr);
    std::string msg = tsr_last_error();
    for (const std::string &w : words) {
        EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    }
}

TEST(ArrayIoErrors, RefusesBadFilesWithClearMessages)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    std::string p = dir.path() + "/bad.npy";
    const std::string ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), }";

    ExpectLoadFails(rt.get(), dir.path() + "/missing.npy", TSR_EIO,
                    {"missing.npy", "No such file"});

    WriteFile(p, NpyFile(ok, 4 * 5 * 8 - 1));
    ExpectLoadFails(rt.get(), p, TSR_EINVAL, {p, "too short"});

    WriteFile(p, Bytes{0x93, 'N', 'U'});
    ExpectLoadFails(rt.get(), p, TSR_EINVAL, {"not a .npy file"});

    Bytes bad = NpyFile(ok, 160);
    bad[1] = 'X';
    WriteFile(p, bad);
    ExpectLoadFails(rt.get(), p, TSR_EINVAL, {"not a .npy file", "magic"});

    bad = NpyFile(ok, 160);
    bad[6] = 9;
    WriteFile(p, bad);
    ExpectLoadFails(rt.get(), p, TSR_EINVAL, {"version 9.0"});

    bad = NpyFile(ok, 0);
    bad.resize(40);
    WriteFile(p, bad);
    ExpectLoadFails(rt.get(), p, TSR_EINVAL, {"ends inside"});

    const std::pair<std::string, std::vector<std::string>> headers[] = {
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (4, 5), }", {"'<f2'", "not supported"}},
        {"{'descr': '|i1', 'fortran_order': False, 'shape': (4, 5), }", {"'|i1'", "not supported"}},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (4, 5), }", {"'<c16'"}},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (4, 5), }", {"'>f8'", "big-endian"}},
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (4, 5), }", {"Fortran order"}},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4, 5), }", {"structured"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         {"dimensions"}},
        {"{'descr': '<f8', 'shape': (4, 5), }", {"missing"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), 'x': 1}", {"unknown key 'x'"}},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (4, 5), }", {"expected ','"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4, -5), }", {"integer"}},
        {"{'descr': '<f8', 'fortran_order': Maybe, 'shape': (4, 5), }", {"True or False"}},
        {"['descr', '<f8']", {"not a dict"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5), } junk", {"after the dict"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 5), }",
         {"64 bits"}},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 5), }",
         {"overflows"}},
    };
    for (const auto &h : headers) {
        SCOPED_TRACE(h.first);
        WriteFile(p, NpyFile(h.first, 4 * 5 * 8));
        ExpectLoadFails(rt.get(), p, TSR_EINVAL, h.second);
    }
}

TEST(ArrayIoErrors, NullArguments)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {4}, {});
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_zeros(rt.get(), &s, &a), TSR_OK);
    Array aa(a);
    tsr_array_t *out = nullptr;
    EXPECT_EQ(tsr_array_to_npy(nullptr, "/tmp/x.npy"), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("tsr_array_to_npy"), std::string::npos);
    EXPECT_EQ(tsr_array_to_npy(a, nullptr), TSR_EINVAL);
    EXPECT_EQ(tsr_array_to_raw(nullptr, "/tmp/x.raw"), TSR_EINVAL);
    EXPECT_EQ(tsr_array_to_raw(a, nullptr), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_npy(nullptr, "/tmp/x.npy", nullptr, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_npy(rt.get(), nullptr, nullptr, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_npy(rt.get(), "/tmp/x.npy", nullptr, nullptr), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_raw(nullptr, "/tmp/x.raw", &s, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_raw(rt.get(), nullptr, &s, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_raw(rt.get(), "/tmp/x.raw", nullptr, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_raw(rt.get(), "/tmp/x.raw", &s, 0, nullptr), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("tsr_array_from_raw"), std::string::npos);
    EXPECT_EQ(out, nullptr);
}

TEST(ArrayIoErrors, BadRawSpecs)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_test::TempFile f("tsr-io-raw");
    WriteFile(f.path(), Bytes(1000, 1));
    tsr_array_t *out = nullptr;
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {4, -2}, {});
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 0, &out), TSR_EINVAL);
    EXPECT_NE(std::string(tsr_last_error()).find("size -2"), std::string::npos);
    s = Spec(static_cast<tsr_dtype_t>(42), {4}, {});
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 0, &out), TSR_EINVAL);
    s = Spec(TSR_FLOAT64, {4}, {-1});
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 0, &out), TSR_EINVAL);
    s = Spec(TSR_FLOAT64, {4}, {});
    s.ndim = TSR_MAX_DIMS + 1;
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 0, &out), TSR_EINVAL);
    s = Spec(TSR_FLOAT64, {126}, {});
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, 0, &out), TSR_EINVAL);
    EXPECT_EQ(tsr_array_from_raw(rt.get(), f.path().c_str(), &s, UINT64_MAX, &out), TSR_EINVAL);
    EXPECT_EQ(out, nullptr);
}

TEST(ArrayIoErrors, UnwritablePath)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {4}, {});
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_ones(rt.get(), &s, &a), TSR_OK);
    Array aa(a);
    std::string p = dir.path() + "/no/such/dir/x.npy";
    EXPECT_EQ(tsr_array_to_npy(a, p.c_str()), TSR_EIO);
    std::string msg = tsr_last_error();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
    EXPECT_EQ(tsr_array_to_raw(a, dir.path().c_str()), TSR_EIO);  // a directory
    EXPECT_NE(std::string(tsr_last_error()).find(dir.path()), std::string::npos);
    EXPECT_TRUE(Exists(dir.path()));
}

// A write that fails half-way (the file size limit) fails the store, names the
// file and the cause, and removes the partial file.
TEST(ArrayIoErrors, FailedWriteRemovesThePartialFile)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    std::string p = dir.path() + "/big.npy";
    tsr_array_spec_t s = Spec(TSR_FLOAT64, {256, 256}, {32, 256});
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_random_uniform(rt.get(), &s, 1, 0, 1, &a), TSR_OK);
    Array aa(a);
    struct rlimit old;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit lim = old;
    lim.rlim_cur = 100000;
    void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    tsr_status_t st = tsr_array_to_npy(a, p.c_str());
    std::string msg = tsr_last_error();
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_EQ(st, TSR_EIO);
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
    EXPECT_FALSE(Exists(p));
    // The array is unharmed, and the store works without the limit.
    ASSERT_EQ(tsr_array_to_npy(a, p.c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(ComputeBytes(LoadNpy(rt.get(), p).get()), ComputeBytes(a));
}

// A read that fails in the tasks (a directory opens, but reading it fails) fails
// the load cleanly: no array, the handles unregistered, the cause named.
TEST(ArrayIoErrors, FailedReadIsClean)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    TempDir dir("tsr-io");
    struct stat sb;
    ASSERT_EQ(stat(dir.path().c_str(), &sb), 0);
    ExpectLoadFails(rt.get(), dir.path(), TSR_EIO, {dir.path(), "Is a directory"});
    if (sb.st_size < 8) {
        GTEST_SKIP() << "directories have no size here";
    }
    int64_t n = sb.st_size < 64 ? sb.st_size : 64;
    tsr_array_spec_t s = Spec(TSR_UINT8, {n}, {4});
    tsr_array_t *out = nullptr;
    EXPECT_EQ(tsr_array_from_raw(rt.get(), dir.path().c_str(), &s, 0, &out), TSR_EIO);
    std::string msg = tsr_last_error();
    EXPECT_NE(msg.find(dir.path()), std::string::npos) << msg;
    EXPECT_NE(msg.find("Is a directory"), std::string::npos) << msg;
    EXPECT_EQ(out, nullptr);
}

TEST(ArrayIo, StoreTruncatesAnExistingFile)
{
    Runtime rt = Cpu4();
    ASSERT_TRUE(rt);
    tsr_test::TempFile f("tsr-io-trunc");
    WriteFile(f.path(), Bytes(100000, 7));
    tsr_array_spec_t s = Spec(TSR_UINT8, {10}, {3});
    tsr_array_t *a = nullptr;
    ASSERT_EQ(tsr_array_full(rt.get(), &s, 5, &a), TSR_OK);
    Array aa(a);
    ASSERT_EQ(tsr_array_to_raw(a, f.path().c_str()), TSR_OK) << tsr_last_error();
    EXPECT_EQ(ReadFile(f.path()), Bytes(10, 5));
}

}  // namespace
