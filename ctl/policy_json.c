/* policy_json.c - JSON writers for policy sections (policy_json.h). */
#include "policy_json.h"

#include "hop_preset.h"

void
policy_json_networks(struct json *j, const Sluice__Policy *p)
{
	size_t i;

	json_array_begin(j, "networks");
	for (i = 0; i < p->n_networks; i++) {
		json_object_begin(j, NULL);
		json_str(j, "cidr", p->networks[i]->cidr);
		json_str(j, "action", p->networks[i]->deny ? "deny" : "allow");
		json_object_end(j);
	}
	json_array_end(j);
}

void
policy_json_users(struct json *j, const Sluice__Policy *p)
{
	size_t i, k;

	json_array_begin(j, "users");
	for (i = 0; i < p->n_users; i++) {
		const Sluice__User *u = p->users[i];
		json_object_begin(j, NULL);
		json_str(j, "name", u->name);
		json_array_begin(j, "senders");
		for (k = 0; k < u->n_senders; k++)
			json_str(j, NULL, u->senders[k]);
		json_array_end(j);
		json_uint(j, "rate_per_minute", u->rate_per_minute);
		json_bool(j, "has_password", u->has_password);
		json_bool(j, "hold", u->hold);
		json_str(j, "rewrite_sender", u->rewrite_sender);
		json_str(j, "rewrite_from", u->rewrite_from);
		json_array_begin(j, "route");
		for (k = 0;
		     u->default_route != NULL && k < u->default_route->n_groups;
		     k++) {
			const Sluice__HopGroup *g = u->default_route->groups[k];
			json_array_begin(j, NULL);
			for (size_t h = 0; h < g->n_hops; h++)
				json_str(j, NULL, g->hops[h]);
			json_array_end(j);
		}
		json_array_end(j);
		json_object_begin(j, "quota");
		json_uint(j, "hour_msgs", u->quota_hour_msgs);
		json_uint(j, "hour_rcpts", u->quota_hour_rcpts);
		json_uint(j, "day_msgs", u->quota_day_msgs);
		json_uint(j, "day_rcpts", u->quota_day_rcpts);
		json_object_end(j);
		json_object_end(j);
	}
	json_array_end(j);
}

void
policy_json_hops(struct json *j, const Sluice__Policy *p)
{
	size_t i;

	json_array_begin(j, "hops");
	for (i = 0; i < p->n_hops; i++) {
		const Sluice__Hop *h = p->hops[i];
		json_object_begin(j, NULL);
		json_str(j, "name", h->name);
		json_str(j, "preset", h->preset);
		json_str(j, "host", h->host);
		json_uint(j, "port", h->port);
		json_str(j, "tls", hop_tls_name(h->tls));
		json_bool(j, "verify_cert", h->verify_cert);
		json_str(j, "user", h->auth_user);
		json_bool(j, "has_secret", h->has_secret);
		json_uint(j, "max_conn", h->max_conn);
		json_uint(j, "rate_per_minute", h->rate_per_minute);
		json_uint(j, "weight", h->weight);
		json_uint(j, "max_rcpt", h->max_rcpt);
		json_uint(j, "max_size", h->max_size);
		if (h->oauth2[0] != '\0') {
			json_str(j, "oauth2", h->oauth2);
			json_str(j, "tenant", h->oauth2_tenant);
			json_str(j, "client_id", h->oauth2_client_id);
			json_str(j, "token_url", h->oauth2_token_url);
			json_str(j, "scope", h->oauth2_scope);
			json_bool(j, "cert_key", h->oauth2_cert);
		}
		json_object_end(j);
	}
	json_array_end(j);
}

void
policy_json_routes(struct json *j, const Sluice__Policy *p)
{
	size_t i, k, h;

	json_array_begin(j, "routes");
	for (i = 0; i < p->n_routes; i++) {
		const Sluice__Route *r = p->routes[i];
		json_object_begin(j, NULL);
		json_str(j, "pattern", r->pattern);
		if (r->sender[0] != '\0')
			json_str(j, "sender", r->sender);
		if (r->user[0] != '\0')
			json_str(j, "user", r->user);
		if (r->listener[0] != '\0')
			json_str(j, "listener", r->listener);
		if (r->client[0] != '\0')
			json_str(j, "client", r->client);
		json_array_begin(j, "groups");
		for (k = 0; k < r->n_groups; k++) {
			json_array_begin(j, NULL);
			for (h = 0; h < r->groups[k]->n_hops; h++)
				json_str(j, NULL, r->groups[k]->hops[h]);
			json_array_end(j);
		}
		json_array_end(j);
		json_object_end(j);
	}
	json_array_end(j);
}
