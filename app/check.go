package app

// Check returns the errors start-up (New) stops on before it opens the store, for c as the
// file, the environment and the flags left it: the derived settings filled in (Finish), every
// check of Validate, the choice of channels and escalation target, and the bot channel's name
// for the bot (the sandbox bot's script, which it reads). What only building the channels finds
// (the sandbox's routing file, key files) is not checked. c is not changed.
func (c Config) Check() error {
	c.Finish()
	if err := c.Validate(); err != nil {
		return err
	}
	p, err := c.plan()
	if err != nil {
		return err
	}
	if c.Bot.Name == "" {
		if _, err := p.bot.BotName(c.sections[p.bot.Section]); err != nil {
			return err
		}
	}
	return nil
}
