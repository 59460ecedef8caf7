// Bearer tokens and HMAC signatures (daemon/http_auth.h).
#include "daemon/http_auth.h"

#include <gtest/gtest.h>

#include "integrations/crypto.h"

namespace tracepager::daemon {
namespace {

TEST(BearerTokenSet, AcceptsExactlyTheConfiguredTokens) {
  BearerTokenSet set({"alpha-token", "b", ""});
  EXPECT_EQ(set.size(), 2u);  // the empty string is skipped
  EXPECT_TRUE(set.Contains("alpha-token"));
  EXPECT_TRUE(set.Contains("b"));
  EXPECT_FALSE(set.Contains(""));
  EXPECT_FALSE(set.Contains("alpha-toke"));    // prefix
  EXPECT_FALSE(set.Contains("alpha-tokenX"));  // longer
  EXPECT_FALSE(set.Contains("alpha-tokeN"));   // same length, last byte differs
  EXPECT_FALSE(set.Contains("Alpha-token"));   // first byte differs
  EXPECT_FALSE(set.Contains(std::string(10000, 'a')));
  EXPECT_FALSE(set.Contains(std::string_view("alpha-token\0", 12)));
}

TEST(BearerTokenSet, EmptySetAcceptsNothing) {
  BearerTokenSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.Contains(""));
  EXPECT_FALSE(set.Contains("anything"));
}

TEST(ParseBearerAuthorization, ExtractsTheToken) {
  EXPECT_EQ(ParseBearerAuthorization("Bearer abc"), "abc");
  EXPECT_EQ(ParseBearerAuthorization("bearer abc"), "abc");
  EXPECT_EQ(ParseBearerAuthorization("BEARER   abc  "), "abc");
  EXPECT_EQ(ParseBearerAuthorization("  Bearer\tabc"), "abc");
  EXPECT_EQ(ParseBearerAuthorization("Bearer"), std::nullopt);
  EXPECT_EQ(ParseBearerAuthorization("Bearer "), std::nullopt);
  EXPECT_EQ(ParseBearerAuthorization("Bearerabc"), std::nullopt);
  EXPECT_EQ(ParseBearerAuthorization("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), std::nullopt);
  EXPECT_EQ(ParseBearerAuthorization("Bearer a b"), std::nullopt);
  EXPECT_EQ(ParseBearerAuthorization(""), std::nullopt);
}

TEST(HmacSha256, MatchesRfc4231TestVectors) {
  // RFC 4231 test case 2.
  EXPECT_EQ(integrations::HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231 test case 1: key 0x0b * 20, data "Hi There".
  EXPECT_EQ(integrations::HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256, VerifiesHexSignatures) {
  const std::string sig = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const std::string data = "what do ya want for nothing?";
  EXPECT_TRUE(VerifyHmacSha256Hex("Jefe", data, sig, false));
  EXPECT_TRUE(VerifyHmacSha256Hex(
      "Jefe", data, "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843", false));
  EXPECT_TRUE(VerifyHmacSha256Hex("Jefe", data, "sha256=" + sig, true));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data, "sha256=" + sig, false));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data + ".", sig, true));
  EXPECT_FALSE(VerifyHmacSha256Hex("jefe", data, sig, true));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data, sig.substr(1), true));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data, sig + "0", true));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data, "", true));
  EXPECT_FALSE(VerifyHmacSha256Hex("Jefe", data, "sha256=", true));
}

}  // namespace
}  // namespace tracepager::daemon
