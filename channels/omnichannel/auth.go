package omnichannel

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/botauth"
)

// Inbound token validation (botframework.md §4.1): Omnichannel, as a Bot Framework channel,
// signs each POST to the bot with an RS256 JWT whose keys the OpenID metadata's jwks_uri
// publishes, each key with an extra "endorsements" list of channel ids. The checks, as
// botbuilder's ParameterizedBotFrameworkAuthentication does them: Bearer scheme; RS256;
// iss = Config.Issuer; aud = Config.AppID; exp required, nbf/exp with 5 minutes of leeway;
// serviceurl claim = the activity's serviceUrl, exactly; the key's endorsements contain the
// activity's channelId when the list is not empty. botauth.Verifier does them.

const (
	// metadataTimeout bounds one resolution of the metadata and each JWKS fetch.
	metadataTimeout = 15 * time.Second
	// keysRefresh is how often keyfunc refreshes the JWKS (botbuilder caches keys for 24 h and
	// refreshes on an unknown kid).
	keysRefresh = time.Hour
	// unknownKidRefresh spaces the refreshes an unknown kid triggers.
	unknownKidRefresh = time.Minute
	// unknownKidWait bounds how long a request with an unknown kid waits for that refresh;
	// otherwise it is refused at once, so forged kids cannot hold requests.
	unknownKidWait = 2 * time.Second
)

// verifier checks Omnichannel's tokens and answers in the Connector's error shape.
type verifier struct {
	v *botauth.Verifier
}

func newVerifier(ctx context.Context, cfg Config, client *http.Client, log zerolog.Logger) *verifier {
	return &verifier{v: botauth.New(ctx, botauth.Options{
		MetadataURL:      cfg.OpenIDMetadataURL,
		Issuers:          []string{cfg.Issuer},
		Audience:         cfg.AppID,
		Endorsements:     !cfg.SkipEndorsements,
		Client:           client,
		Timeout:          metadataTimeout,
		RefreshInterval:  keysRefresh,
		UnknownKIDEvery:  unknownKidRefresh,
		RateLimitWaitMax: unknownKidWait,
		Name:             "omnichannel token keys",
		Log:              log,
	})}
}

// verify checks the Authorization header's token: signature, algorithm, issuer, audience and
// lifetime. The activity-bound checks are in bind. It returns an *apiError: 401, or 503 while
// the keys cannot be had.
func (v *verifier) verify(ctx context.Context, header string) (*botauth.Token, error) {
	t, err := v.v.Verify(ctx, header)
	if err != nil {
		return nil, authError(err)
	}
	return t, nil
}

// bind checks what ties the token to the activity: the serviceurl claim and the endorsement
// of the activity's channelId.
func (v *verifier) bind(t *botauth.Token, a *activity.Activity) error {
	if err := v.v.Bind(t, a.ServiceURL, a.ChannelID); err != nil {
		return authError(err)
	}
	return nil
}

// authError maps a botauth error to the answer: 401 saying why, or 503 without keys.
func authError(err error) *apiError {
	var re *botauth.RefusedError
	if errors.As(err, &re) {
		return unauthorized(re.Reason)
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeServiceError, Message: ErrNoKeys.Error(), Err: err}
}
