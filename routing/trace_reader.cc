// Format detection and dispatch. OTLP goes first through the streaming reader, which gives up
// at the first key that belongs to another shape; only then is a DOM built for Jaeger and
// Zipkin, whose documents are small in practice and whose shapes (a processes map that may
// follow the spans, Zipkin's shared ids) want random access.
#include "routing/trace_reader.h"

#include "routing/json_util.h"
#include "routing/reader_common.h"
#include "routing/reader_dom.h"

namespace tracepager::routing {
namespace {

using rapidjson::Value;

const char* kNotTrace = "not a trace document: ";

// Lists up to five keys of an object for a message.
std::string KeyList(const Value& obj) {
  std::string out;
  size_t n = 0;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    if (n++ == 5) {
      out += ", ...";
      break;
    }
    if (!out.empty()) out += ", ";
    out += internal::Quote(std::string_view(it->name.GetString(), it->name.GetStringLength()));
  }
  return out.empty() ? "none" : out;
}

// Decides the format of a parsed non-OTLP document, or explains why it is not a trace.
Result<TraceFormat> Detect(const Value& root) {
  if (root.IsArray()) {
    if (root.Empty()) return TraceFormat::kZipkinV2;
    const Value& first = root[0];
    if (first.IsArray()) return TraceFormat::kZipkinV2;
    if (first.IsObject()) {
      if (first.HasMember("spanID") || first.HasMember("operationName") ||
          first.HasMember("process") || first.HasMember("processID")) {
        return TraceFormat::kJaegerV1;
      }
      if (first.HasMember("id") || first.HasMember("traceId")) return TraceFormat::kZipkinV2;
      return Error::InvalidInput(std::string(kNotTrace) +
                                 "an array whose first element has none of Zipkin's or Jaeger's "
                                 "span fields (keys: " +
                                 KeyList(first) + ")");
    }
    return Error::InvalidInput(std::string(kNotTrace) + "an array of " +
                               internal::JsonTypeName(first) + "s");
  }
  if (!root.IsObject()) {
    return Error::InvalidInput(std::string(kNotTrace) + "the document is " +
                               internal::JsonTypeName(root));
  }
  if (root.HasMember("data")) return TraceFormat::kJaegerV1;
  if (root.HasMember("spans") && (root.HasMember("traceID") || root.HasMember("processes"))) {
    return TraceFormat::kJaegerV1;
  }
  if (root.HasMember("resourceSpans") || root.HasMember("batches") || root.HasMember("trace") ||
      root.HasMember("result")) {
    return TraceFormat::kOtlp;
  }
  if (const Value* traces = internal::Member(root, "traces");
      traces != nullptr && traces->IsArray()) {
    return Error::InvalidInput(std::string(kNotTrace) +
                               "a Tempo search response (\"traces\" lists trace ids and root "
                               "services, not spans); fetch each trace by its traceID");
  }
  if (root.HasMember("summaries")) {
    return Error::InvalidInput(std::string(kNotTrace) +
                               "a Jaeger trace summaries response (\"summaries\" holds span "
                               "counts, not spans); fetch each trace by its traceId");
  }
  if (const Value* error = internal::Member(root, "error"); error != nullptr && error->IsObject()) {
    // Jaeger v3: {"error":{"httpCode":404,"message":"trace not found"}}
    std::string text = "jaeger v3 error response";
    const Value* code = internal::Member(*error, "httpCode");
    const Value* message = internal::Member(*error, "message");
    if (code != nullptr && code->IsInt()) text += " " + std::to_string(code->GetInt());
    if (message != nullptr && message->IsString()) text += std::string(": ") + message->GetString();
    if (code != nullptr && code->IsInt() && code->GetInt() == 404) return Error::NotFound(text);
    return Error::InvalidInput(text);
  }
  return Error::InvalidInput(
      std::string(kNotTrace) +
      "an object with none of the known trace shapes (keys: " + KeyList(root) + ")");
}

}  // namespace

const char* TraceFormatName(TraceFormat format) {
  switch (format) {
    case TraceFormat::kAuto:
      return "auto";
    case TraceFormat::kJaegerV1:
      return "jaeger";
    case TraceFormat::kOtlp:
      return "otlp";
    case TraceFormat::kZipkinV2:
      return "zipkin";
  }
  return "auto";
}

Result<ReadResult> ReadTraces(std::string_view json, const ReadLimits& limits, TraceFormat format) {
  if (json.size() > limits.max_bytes) {
    return Error::InvalidInput("the document is " + std::to_string(json.size()) +
                               " bytes, more than the limit of " +
                               std::to_string(limits.max_bytes) + " (ReadLimits::max_bytes)");
  }
  internal::TraceBuilder builder(limits);
  ReadResult out;
  if (format == TraceFormat::kAuto || format == TraceFormat::kOtlp) {
    Error error;
    switch (internal::ReadOtlp(json, limits, builder, &error)) {
      case internal::OtlpOutcome::kDone:
        out.format = TraceFormat::kOtlp;
        out.traces = builder.Finish();
        return out;
      case internal::OtlpOutcome::kError:
        return error;
      case internal::OtlpOutcome::kNotOtlp:
        break;
    }
  }

  rapidjson::Document doc;
  if (Status parsed = internal::ParseDocument(json, limits.max_depth, &doc); !parsed.ok()) {
    return parsed.error();
  }
  Result<TraceFormat> detected = Detect(doc);
  if (!detected.ok()) return detected.error();
  if (format != TraceFormat::kAuto && format != *detected) {
    return Error::InvalidInput(std::string("expected ") + TraceFormatName(format) +
                               " JSON, but the document looks like " + TraceFormatName(*detected));
  }
  Status read = OkStatus();
  switch (*detected) {
    case TraceFormat::kJaegerV1:
      read = internal::ReadJaeger(doc, builder);
      break;
    case TraceFormat::kZipkinV2:
      read = internal::ReadZipkin(doc, builder);
      break;
    default:
      // Detect says OTLP only when the streaming reader has already refused the document.
      return Error::InvalidInput(std::string(kNotTrace) + "an OTLP wrapper without resourceSpans");
  }
  if (!read.ok()) return read.error();
  out.format = *detected;
  out.traces = builder.Finish();
  return out;
}

}  // namespace tracepager::routing
