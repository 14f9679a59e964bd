/* Status codes, their names, the per-thread last error and version strings. */
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "common/test_util.h"

namespace {

using tsr_test::LastErrorOnFreshThread;

const std::pair<tsr_status_t, const char *> kCodes[] = {
    {TSR_OK, "TSR_OK"},         {TSR_PENDING, "TSR_PENDING"},   {TSR_EINVAL, "TSR_EINVAL"},
    {TSR_ENOMEM, "TSR_ENOMEM"}, {TSR_EBUSY, "TSR_EBUSY"},       {TSR_ENOTSUP, "TSR_ENOTSUP"},
    {TSR_ENODEV, "TSR_ENODEV"}, {TSR_EBACKEND, "TSR_EBACKEND"}, {TSR_ECANCELED, "TSR_ECANCELED"},
    {TSR_ETASK, "TSR_ETASK"},
    {TSR_EIO, "TSR_EIO"},
};

TEST(Status, CodesHaveDocumentedValues)
{
    EXPECT_EQ(TSR_OK, 0);
    EXPECT_GT(TSR_PENDING, 0);
    for (const auto &code : kCodes) {
        if (code.first != TSR_OK && code.first != TSR_PENDING) {
            EXPECT_LT(code.first, 0) << code.second;
        }
    }
}

TEST(Status, StrNamesEveryCode)
{
    std::set<std::string> seen;
    for (const auto &code : kCodes) {
        const char *name = tsr_status_str(code.first);
        ASSERT_NE(name, nullptr);
        EXPECT_STREQ(name, code.second);
        seen.insert(name);
    }
    EXPECT_EQ(seen.size(), sizeof(kCodes) / sizeof(kCodes[0]));
}

TEST(Status, StrOfUnknownCodeIsNotNull)
{
    for (int value : {-1000, -10, 2, 77, 1 << 30}) {
        const char *name = tsr_status_str(static_cast<tsr_status_t>(value));
        ASSERT_NE(name, nullptr) << value;
        EXPECT_GT(std::string(name).size(), 0u) << value;
        for (const auto &code : kCodes) {
            EXPECT_STRNE(name, code.second) << value;
        }
    }
}

TEST(Status, LastErrorStartsEmptyOnANewThread)
{
    std::string message = LastErrorOnFreshThread([] {});
    EXPECT_EQ(message, "");
}

TEST(Status, LastErrorIsPerThread)
{
    tsr_runtime_stats_t stats;
    std::string failing =
        LastErrorOnFreshThread([&] { EXPECT_EQ(tsr_runtime_stats(nullptr, &stats), TSR_EINVAL); });
    EXPECT_NE(failing, "");
    /* Another thread that made no failing call still sees nothing. */
    EXPECT_EQ(LastErrorOnFreshThread([] {}), "");
}

TEST(Status, SuccessfulCallsDoNotClearLastError)
{
    std::string message = LastErrorOnFreshThread([] {
        tsr_runtime_stats_t stats;
        EXPECT_EQ(tsr_runtime_stats(nullptr, &stats), TSR_EINVAL);
        std::string before = tsr_last_error();
        EXPECT_NE(before, "");
        tsr_config_t resolved;
        tsr_config_t config = tsr_test::TestConfig(1, TSR_SCHED_EAGER);
        EXPECT_EQ(tsr_config_resolve(&config, &resolved), TSR_OK);
        EXPECT_EQ(std::string(tsr_last_error()), before);
    });
    EXPECT_NE(message, "");
}

TEST(Status, VersionMatchesConfigHeader)
{
    const char *version = tsr_version();
    ASSERT_NE(version, nullptr);
    EXPECT_STREQ(version, TSR_VERSION_STRING);
    EXPECT_TRUE(std::regex_match(version, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+.*"))) << version;
}

TEST(Status, PolicyNames)
{
    EXPECT_STREQ(tsr_sched_policy_name(TSR_SCHED_EAGER), "eager");
    EXPECT_STREQ(tsr_sched_policy_name(TSR_SCHED_WS), "ws");
    EXPECT_STREQ(tsr_sched_policy_name(TSR_SCHED_DEFAULT), "default");
    EXPECT_NE(tsr_sched_policy_name(static_cast<tsr_sched_policy_t>(99)), nullptr);
}

}  // namespace
