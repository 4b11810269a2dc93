package salesforce_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/app"
	"github.com/bfbridge/bfbridge/channels/salesforce"
)

// TestModuleRegistered: the salesforce: section is part of the bridge's configuration, its
// errors name its keys at start-up, and escalation.target: salesforce is valid once it is on.
func TestModuleRegistered(t *testing.T) {
	cfg := app.Defaults()
	cfg.PublicURL = "https://bridge.example.com"
	cfg.Escalation.Target = salesforce.Name
	sec := app.SectionOf[salesforce.Config](&cfg, "salesforce")
	sec.Enabled = true
	err := cfg.Validate()
	require.ErrorContains(t, err, "salesforce.scrt_url is required when salesforce is enabled")
	require.ErrorContains(t, err, "salesforce.es_developer_name is required")

	sec.SCRTURL, sec.OrgID, sec.ESDeveloperName = "https://acme.my.salesforce-scrt.com", "00DXX0000001gPL", "Web"
	require.NoError(t, cfg.Validate())
}
