<?php
// hainit's unattended WordPress install (step web.wordpress.install), run as `php -r` with the
// WordPress root as working directory; hainit passes everything after this comment block.
// HAINIT_MODE=check prints the state; HAINIT_MODE=install installs once per database under a
// MariaDB lock (two web nodes never install twice), with the admin password on stdin.
// WP_REPAIRING keeps wp-load.php from dying on a half-created schema (a killed install).
// wp_die() exits with status 0, so a run that never reached the end exits from the shutdown
// handler, with the page text as the reason: 3 when wpdb could not connect (the database is not
// answering yet; hainit retries), else 1. The last line is HAINIT:installed or HAINIT:not-installed.
define("WP_INSTALLING", true);
define("WP_REPAIRING", true);
if (getenv("HAINIT_SITE_URL")) {
    define("WP_SITEURL", getenv("HAINIT_SITE_URL"));
    define("WP_HOME", getenv("HAINIT_SITE_URL"));
}
$_SERVER += array("HTTP_HOST" => "localhost", "SERVER_NAME" => "localhost", "REQUEST_URI" => "/",
    "REQUEST_METHOD" => "GET", "SERVER_PROTOCOL" => "HTTP/1.1");
ob_start();
register_shutdown_function(function () {
    $out = ob_get_clean();
    if (!defined("HAINIT_DONE")) {
        fwrite(STDERR, "hainit: WordPress stopped: " . trim(preg_replace("/\\s+/", " ", strip_tags($out))) . "\n");
        exit(isset($GLOBALS["wpdb"]) && empty($GLOBALS["wpdb"]->ready) ? 3 : 1);
    }
    echo $out;
});
require "./wp-load.php";
require_once ABSPATH . "wp-admin/includes/upgrade.php";
// A query that fails stops the run (exit 3: the database is failing over, or refuses us; the boot
// unit runs hainit again), never reads as "not installed": an install over a live site would
// overwrite siteurl and blogname. Only "no such table" (1146: an empty database) means absent.
function hainit_query($sql) {
    global $wpdb;
    $value = $wpdb->get_var($sql);
    if ($wpdb->last_error !== "") {
        $absent = $wpdb->dbh instanceof mysqli && mysqli_errno($wpdb->dbh) === 1146;
        if (!$absent) {
            define("HAINIT_DONE", true);
            fwrite(STDERR, "hainit: query failed: $sql: $wpdb->last_error\n");
            exit(3);
        }
        return null;
    }
    return $value;
}
// Installed: users and a siteurl. No users: empty, or an install killed before its admin (it is
// finished). Users without a siteurl is no state wp_install leaves: refuse to touch it (exit 1).
function hainit_state() {
    global $wpdb;
    $wpdb->suppress_errors(true);
    $users = (int) hainit_query("SELECT COUNT(*) FROM $wpdb->users");
    $url = hainit_query("SELECT option_value FROM $wpdb->options WHERE option_name = 'siteurl'");
    if ($users > 0 && empty($url)) {
        define("HAINIT_DONE", true);
        fwrite(STDERR, "hainit: $wpdb->users has $users users but $wpdb->options has no siteurl: not a database "
            . "hainit installs into; look at it by hand\n");
        exit(1);
    }
    return $users > 0 ? "installed" : "not-installed";
}
if (getenv("HAINIT_MODE") === "install") {
    if ($wpdb->get_var("SELECT GET_LOCK('hainit-wordpress-install', 600)") !== "1") {
        define("HAINIT_DONE", true);
        fwrite(STDERR, "hainit: could not take the install lock in the database\n");
        exit(1);
    }
    if (hainit_state() !== "installed") {
        $password = rtrim(stream_get_contents(STDIN), "\r\n");
        wp_install(getenv("HAINIT_TITLE"), getenv("HAINIT_ADMIN_USER"), getenv("HAINIT_ADMIN_EMAIL"), true, "",
            wp_slash($password));
    }
    $wpdb->query("SELECT RELEASE_LOCK('hainit-wordpress-install')");
}
define("HAINIT_DONE", true);
echo "HAINIT:", hainit_state(), "\n";
