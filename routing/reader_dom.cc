#include "routing/reader_dom.h"

#include <cmath>
#include <cstdio>

#include "routing/json_util.h"

namespace tracepager::routing::internal {

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

Error WrongType(const std::string& path, const char* field, const rapidjson::Value& v,
                const char* expected) {
  std::string got = JsonTypeName(v);
  if (v.IsString()) got += " " + Quote(std::string_view(v.GetString(), v.GetStringLength()));
  return Error::InvalidInput(path + ": \"" + field + "\" is " + got + ", expected " + expected);
}

Error Missing(const std::string& path, const char* field) {
  return Error::InvalidInput(path + ": \"" + field + "\" is missing");
}

Result<std::string_view> OptString(const rapidjson::Value& obj, const std::string& path,
                                   const char* field) {
  const rapidjson::Value* v = Member(obj, field);
  if (v == nullptr) return std::string_view();
  if (!v->IsString()) return WrongType(path, field, *v, "a string");
  return std::string_view(v->GetString(), v->GetStringLength());
}

Result<RawTime> TimeMember(const rapidjson::Value& obj, const std::string& path, const char* field,
                           const char* unit) {
  RawTime t;
  const rapidjson::Value* v = Member(obj, field);
  if (v == nullptr) return t;
  if (v->IsInt64()) {
    t.state = RawTime::State::kOk;
    t.value = v->GetInt64();
  } else if (v->IsNumber()) {
    // Beyond int64, or a fraction: a whole number in range is still usable.
    double d = v->GetDouble();
    if (std::isfinite(d) && d >= -9.2e18 && d <= 9.2e18) {
      t.state = RawTime::State::kOk;
      t.value = static_cast<int64_t>(d);
    } else {
      t.state = RawTime::State::kOutOfRange;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      t.text = buf;
    }
  } else if (v->IsString()) {
    std::string_view s(v->GetString(), v->GetStringLength());
    if (s.empty()) return t;
    if (auto n = ParseInt64(s)) {
      t.state = RawTime::State::kOk;
      t.value = *n;
    } else if (s.size() <= 40 && s.find_first_not_of("-0123456789") == std::string_view::npos) {
      t.state = RawTime::State::kOutOfRange;
      t.text = std::string(s);
    } else {
      return WrongType(path, field, *v, unit);
    }
  } else {
    return WrongType(path, field, *v, unit);
  }
  return t;
}

AttrValue ToAttrValue(const rapidjson::Value& v) {
  AttrValue a;
  if (v.IsString()) {
    a.type = AttrValue::Type::kString;
    a.str = std::string_view(v.GetString(), v.GetStringLength());
  } else if (v.IsBool()) {
    a.type = AttrValue::Type::kBool;
    a.b = v.GetBool();
  } else if (v.IsInt64()) {
    a.type = AttrValue::Type::kInt;
    a.i = v.GetInt64();
  } else if (v.IsNumber()) {
    a.type = AttrValue::Type::kDouble;
    a.d = v.GetDouble();
  }
  return a;
}

}  // namespace tracepager::routing::internal
