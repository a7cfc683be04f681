"""The campaign configuration: YAML files in `config/`, validated into typed models."""

from wangjian.campaign.loader import CampaignConfig, ConfigError, load_config

__all__ = ["CampaignConfig", "ConfigError", "load_config"]
