package app

import (
	"github.com/bfbridge/bfbridge/channels/botframework"
	"github.com/bfbridge/bfbridge/channels/desk"
	"github.com/bfbridge/bfbridge/channels/directline"
	"github.com/bfbridge/bfbridge/channels/directline/dlclient"
	"github.com/bfbridge/bfbridge/channels/dynamics"
	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/channels/omnichannel"
	"github.com/bfbridge/bfbridge/channels/salesforce"
	"github.com/bfbridge/bfbridge/channels/signin"
)

// Channels is the registry: every channel the bridge can run, in the order they are built
// (a channel may use one listed before it) and started; they stop in the reverse order. Each
// brings its own configuration section. Adding a channel is a package with a module.go and
// one line here (README, "Adding a contact center").
var Channels = []module.Registration{
	directline.Module,   // directline: the Direct Line 3.0 server for customers' widgets
	botframework.Module, // bot: a self-hosted bot's messaging endpoint
	dlclient.Module,     // bot.directline: a bot hosted behind Direct Line
	desk.BotModule,      // sandbox: the sandbox bot, when no other bot is configured
	signin.Module,       // oauth: the token service for bots that sign users in (needs bot)
	omnichannel.Module,  // omnichannel: the bridge as an Omnichannel bot application user (T1)
	desk.Module,         // sandbox: the sandbox contact center (escalation target "desk")
	dynamics.Module,     // dynamics: Dynamics 365 through its Messaging API (escalation target "dynamics")
	salesforce.Module,   // salesforce: Salesforce MIAW as a contact center (escalation target "salesforce")
}
