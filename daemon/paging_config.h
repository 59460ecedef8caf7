// PagingConfig: the parsed `pagers:` and `delivery:` config sections (daemon/pager_config.h
// parses them). Plain data, in a header of its own so that daemon/config.h can hold one without
// including the parser.
#pragma once

#include <string>

#include "integrations/delivery/delivery.h"
#include "integrations/pager_factory.h"

namespace tracepager::daemon {

struct PagingConfig {
  integrations::PagerConfigs pagers;  // the HTTP pagers configured; none by default
  std::string trace_url_template;     // for integrations::PageOptions; empty: no trace links
  integrations::delivery::DeliveryOptions delivery;
};

}  // namespace tracepager::daemon
