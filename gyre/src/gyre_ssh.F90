!> @file gyre_ssh.F90
!> @brief Continuity: thickness fluxes and the sea-surface-height tendency of the reduced-gravity layer.
!>
!> The prognostic variable is the sea surface height ssh; the upper-layer thickness is h = rn_h0 + rgfac*ssh
!> with rgfac = g/g' (in a 1.5-layer model the interface moves g/g' times as much as the surface).
!> d(ssh)/dt = -(1/rgfac) div(h u). The flux divergence telescopes, so the basin volume is kept to round-off.
module gyre_ssh
   use gyre_par
   use gyre_mpp, only: ni, nj
   use gyre_dom, only: tmask, umask, vmask
   use gyre_oce, only: ht, uflx, vflx
   implicit none
   private

   public :: ssh_flx, ssh_tend, entrain

   real(wp), parameter :: rp_tent = 7200._wp   ! time scale of the outcrop guard's entrainment (s): faster than an eddy
   !                                             ! lifts the interface, slower than 1/2.5 of rn_dt (RK3 stays stable)

contains

   !> Layer thickness at T points and thickness fluxes at u and v points, on the whole tile where defined.
   subroutine ssh_flx(px)
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state with valid halos
      integer, parameter :: h = nn_hls
      integer :: ji, jj
      do jj = 1-h, nj+h
         do ji = 1-h, ni+h
            ht(ji,jj) = rn_h0 + rgfac * px(ji,jj,jp_ssh)
         end do
      end do
      do jj = 1-h, nj+h-1
         do ji = 1-h, ni+h-1
            uflx(ji,jj) = 0.5_wp * (ht(ji,jj) + ht(ji+1,jj)) * px(ji,jj,jp_u) * umask(ji,jj)
            vflx(ji,jj) = 0.5_wp * (ht(ji,jj) + ht(ji,jj+1)) * px(ji,jj,jp_v) * vmask(ji,jj)
         end do
      end do
   end subroutine ssh_flx

   !> ssh tendency on the interior.
   subroutine ssh_tend(pt)
      real(wp), intent(inout) :: pt(1-nn_hls:, 1-nn_hls:, :)   !< tendencies; the ssh slot is set
      integer :: ji, jj
      real(wp) :: zrdx, zrdy, zr
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy ; zr = 1._wp / rgfac
      do jj = 1, nj
         do ji = 1, ni
            pt(ji,jj,jp_ssh) = -zr * ((uflx(ji,jj) - uflx(ji-1,jj)) * zrdx + (vflx(ji,jj) - vflx(ji,jj-1)) * zrdy) &
               &               * tmask(ji,jj)
            if (ht(ji,jj) < rn_hthin) pt(ji,jj,jp_ssh) = pt(ji,jj,jp_ssh) + zr * entrain(ht(ji,jj)) * tmask(ji,jj)
         end do
      end do
   end subroutine ssh_tend

   !> Outcrop guard: entrainment velocity (m/s) into a layer thinner than rn_hthin, (rn_hthin - h)**2 / (t rn_hthin)
   !> with t = rp_tent (McCreary and Kundu 1988); 0 for thicker layers, so the usual run is untouched bit for bit.
   pure real(wp) function entrain(ph)
      real(wp), intent(in) :: ph                !< layer thickness (m)
      entrain = 0._wp
      if (ph < rn_hthin) entrain = (rn_hthin - ph)**2 / (rp_tent * rn_hthin)
   end function entrain

end module gyre_ssh
